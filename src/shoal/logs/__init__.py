"""Function logs: the platform's lines (START/END/REPORT …), buffering off the invoke path, and the store."""
