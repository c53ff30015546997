"""The six workloads of ``parallel.py``, a module each; ``_common`` holds what they share.

``parallel.py``'s docstring says what each measures and how to read its table.
``_cold_first`` and ``_cold_seed`` are the scripts that (cold) runs, each in a
fresh interpreter.
"""
