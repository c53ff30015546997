"""The five workloads of ``parallel.py``, a module each; ``_common`` holds what they share.

``parallel.py``'s docstring says what each measures and how to read its table.
"""
