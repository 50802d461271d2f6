
8{"op":"record_token_use","uses":{"sat_1":1800000000000}}