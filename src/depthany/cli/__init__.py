"""Command line: one small module per verb, no logic beyond argument parsing and reporting."""
