"""`python -m services.janitor`: run the janitor worker."""

from services.janitor.worker import main

if __name__ == "__main__":
    main()
