from taoflow.cli import main

main()
