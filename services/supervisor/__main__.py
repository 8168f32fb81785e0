"""`python -m services.supervisor deploy/Procfile`: run and supervise the Procfile's processes."""

from services.supervisor.runner import main

main()
