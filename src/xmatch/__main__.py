from xmatch.cli import main

raise SystemExit(main())
