"""`python -m arrears`: the same command as `arrears`."""

from arrears.cli import app

app(prog_name="arrears")
