from supportloop.cli import app

app()
