"""The worker side: where ``par_map`` work runs, in threads, worker processes or on Ray.

Main process:
  _executors  the Executor protocol, threads, and the executors of one run
  _options    WorkerOptions and RayOptions: how a map's workers start and live
  _pool       ProcessExecutor: the job queue, the listener workers connect to
  _lane       one worker process at a time, kept busy with jobs
  _slots      the shared memory lent to jobs, and reused
  _deaths     WorkerDiedError, and what a worker's death most often means
  _forkserver what the fork server loads before it forks workers
  _ray        RayExecutor: each job a Ray task (imported with Ray, by a run
              that has a Ray map)
Both sides:
  _messages   a job and its reply, as they cross the socket
  _wire       length-prefixed messages on a worker's socket
  _shm        what both sides agree on about shared memory
  _packing    large buffers out of band, into shared memory
  _script     pickling work: the script's functions by reference where workers have them
  _work       what a job does to its items (also in worker threads)
A worker process:
  _worker     its set-up and job loop
  _ray_task   a job as a Ray task, in a Ray worker
  _forkserver_main  loads the running script in the fork server

This package imports nothing, and the modules a worker process runs import
neither trio nor the engine: a worker loads only what it runs.
"""
