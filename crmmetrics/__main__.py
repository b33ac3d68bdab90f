from crmmetrics.cli import main

main()
