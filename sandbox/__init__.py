"""Stand-ins that run everything on one machine: a Microsoft 365 school tenant and a portal."""
