# Every test runs inside snake's leak check: worker processes, threads and
# shared memory a test leaves behind fail it.
pytest_plugins = ["snake.testing.pytest_plugin"]
