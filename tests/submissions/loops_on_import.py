"""Top-level code that never ends (as when a notebook's training loop is pasted in)."""
while True:
    pass
