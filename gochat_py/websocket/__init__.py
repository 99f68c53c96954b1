"""The WebSocket door: the RFC 6455 protocol, frames, one session per connected device."""
