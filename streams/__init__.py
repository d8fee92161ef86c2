"""Adapters around the pure core: CLI, replay files, Kafka/Faust, metrics and logs.

Agents and commands here translate between the outside world and `hedger`;
no business rule lives in this package.
"""
