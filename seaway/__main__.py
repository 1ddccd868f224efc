from seaway.cli import main

main()
