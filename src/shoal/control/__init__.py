"""Use-cases over the store: functions, versions, aliases, layers, code packages."""
