"""The service's state (clients, idempotency, rate limits) lives beside the keys, in
``pushprov.store``; these are the names the service's modules use for it."""

from ..store import ClientInfo, ServiceState, StoredResponse

__all__ = ["ClientInfo", "ServiceState", "StoredResponse"]
