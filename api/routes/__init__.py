"""One module per resource; main.py includes them all."""
