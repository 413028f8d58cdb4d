"""Speed tricks behind one door: each module here uses a private or low-level API, says why,
what it gains on which benchmark, and which public code it is tested against."""
