"""A small process supervisor for `make run`: one crashing process is restarted, never fatal."""
