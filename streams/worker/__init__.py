"""The worker (I/O): the Faust app, the pipeline of agents and tables, metrics, health, the run."""
