from alert_relay.server import main

main()
