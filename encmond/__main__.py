from encmond.cli import main

raise SystemExit(main())
