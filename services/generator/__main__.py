"""`python -m services.generator`: run the generator worker."""

from services.generator.worker import main

if __name__ == "__main__":
    main()
