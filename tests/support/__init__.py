"""What the tests and the benchmarks share; no test module imports another.

- ``paths``: the repository and its broker and registry scripts.
- ``broker``: the session's broker, names and ports no other test uses, dates older than retention.
- ``workers``: ``parcelflow`` processes (the CLI, workers), their ``/metrics`` and ``/ready``.
- ``pipeline``: publishing to a running pipeline, waiting for it, reading and checking its windows.
- ``network``: hubs, flows and sources written out apart from ``streams``, for generators and truths.
- ``scans``: fixed times, sample scan events and observations for the pure tests.
- ``flows``, ``scan_files``, ``simulation``: generated scans with their truth; the simulator's output read back.
- ``stores``, ``stages``, ``producers``, ``schemas``: a dict state store, both aggregation stages in
  one process, aiokafka producer fakes, source schemas as a next release would ship them.
- ``stored_forms``: state as only earlier versions stored it, to show it stays readable.
"""
