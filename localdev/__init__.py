"""Local stand-ins for cloud services, started on free loopback ports."""
