print("minibroker")
