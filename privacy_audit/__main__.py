from privacy_audit._entry import main

main()
