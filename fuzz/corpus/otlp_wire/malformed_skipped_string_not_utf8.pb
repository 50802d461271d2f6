

	unrelatedÿþ