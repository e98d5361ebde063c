"""The operator command: python -m ops --help."""
