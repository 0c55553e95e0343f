fetch("/aws-config.json").then(r=>r.json()).then(c=>{document.getElementById("root").textContent=[c.region,c.userPoolId,c.userPoolClientId,c.apiEndpoint,c.environment].join(" ")});
