from possim.cli import main

raise SystemExit(main())
