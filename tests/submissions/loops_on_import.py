"""Code that never ends while the file is imported (a class body runs on import; a
top-level loop would be skipped like any top-level work)."""


class _RunsAtImport:
    while True:
        pass
