from annopipe.cli import main

main()
