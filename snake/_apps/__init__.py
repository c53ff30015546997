"""Applications built on snake: the ``snake`` command, its demo and its images pipeline.

They use the library as a user would, and are kept apart from the engine.
"""
