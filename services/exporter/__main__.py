"""`python -m services.exporter`: run the exporter worker."""

from services.exporter.worker import main

if __name__ == "__main__":
    main()
