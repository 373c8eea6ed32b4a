"""Privacy-officer review: server-rendered pages (no front-end build step) and their service."""
