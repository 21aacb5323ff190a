from mmconcepts.cli import main

main()
