"""The aggregation, pure: observations, windows, visits, the first stage per partition, the merge per hub.

No Kafka, no Faust: state goes through the ``StateStore`` protocol (a dict in the unit tests).
"""
