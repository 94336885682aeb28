"""Import-only stand-in (see IMPORT_ONLY.txt)."""
