"""The service's configuration is the hosting layer's (``pushprov.hosting``), shared with the
sandbox; this is the name the service's modules use for it."""

from ..hosting import ServiceConfig

__all__ = ["ServiceConfig"]
