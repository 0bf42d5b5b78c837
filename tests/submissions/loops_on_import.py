"""Code that never ends while the file is imported (a class body runs on import; a
top-level loop would be skipped like any top-level work)."""


import time


class _RunsAtImport:
    while True:  # idles, so that the tests beside it keep the CPU
        time.sleep(0.05)
