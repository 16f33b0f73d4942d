from benchmarks.report.page import main

main()
