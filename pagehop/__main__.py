from pagehop.cli import app

app()
