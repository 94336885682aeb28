"""Stand-in package (see IMPORT_ONLY.txt)."""
