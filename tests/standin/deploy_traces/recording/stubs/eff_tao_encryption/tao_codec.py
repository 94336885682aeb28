"""Import-only stand-in (see IMPORT_ONLY.txt)."""

decrypt_stream = encrypt_stream = None
