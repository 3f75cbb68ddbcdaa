"""parcelflow: real-time parcel-flow pipeline for a hub network (Kafka, Faust, Prometheus)."""

__version__ = "0.1.0"
