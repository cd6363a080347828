(function(){
  var n=0, svgs=document.querySelectorAll('svg.chart');
  svgs.forEach(function(s){var r=s.getBoundingClientRect(), marks=s.querySelectorAll('.pt,.median,.band');
    var ok=r.width>0&&r.height>0&&marks.length>0;
    marks.forEach(function(m){try{var b=m.getBBox(); if(!(b.width>0||b.height>0)) ok=false;}catch(e){ok=false;}});
    if(ok) n++;});
  var t=0; document.querySelectorAll('table').forEach(function(x){if(x.rows.length>1&&x.getBoundingClientRect().height>0) t++;});
  document.body.setAttribute('data-charts-total', svgs.length);
  document.body.setAttribute('data-charts-rendered', n);
  document.body.setAttribute('data-tables-rendered', t);
})();
(function(){
  function openTarget(){var t=document.getElementById(location.hash.slice(1));
    for(var d=t&&t.closest('details');d;d=d.parentElement&&d.parentElement.closest('details')) d.open=true;
    if(t) t.scrollIntoView();}
  window.addEventListener('hashchange', openTarget); openTarget();
})();
