"""The worker side: where ``par_map`` work runs, in threads or worker processes.

Imports nothing, so a worker process that unpickles its work loads only the
modules it runs.
"""
