from arrears.cli import app

app(prog_name="arrears")
