"""Worker processes: they poll the task queue and run workflows and activities. Stateless:
scale out by running more copies (``docker-compose up --scale worker=3``)."""
