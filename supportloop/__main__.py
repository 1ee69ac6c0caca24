"""`python -m supportloop`: the same CLI as the `supportloop` script."""

from supportloop.cli import app

app()
